package open311

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
)

// The reply types carry the specification's element names. The JSON form
// of a list is a bare array (the specification's examples); the XML form
// wraps it in the list element.

type discovery struct {
	XMLName    xml.Name   `json:"-" xml:"discovery"`
	Changeset  string     `json:"changeset" xml:"changeset"`
	Contact    string     `json:"contact" xml:"contact"`
	KeyService string     `json:"key_service" xml:"key_service"`
	Endpoints  []endpoint `json:"endpoints" xml:"endpoints>endpoint"`
}

type endpoint struct {
	Specification string   `json:"specification" xml:"specification"`
	URL           string   `json:"url" xml:"url"`
	Changeset     string   `json:"changeset" xml:"changeset"`
	Type          string   `json:"type" xml:"type"`
	Formats       []string `json:"formats" xml:"formats>format"`
}

type service struct {
	Code        string `json:"service_code" xml:"service_code"`
	Name        string `json:"service_name" xml:"service_name"`
	Description string `json:"description" xml:"description"`
	Metadata    bool   `json:"metadata" xml:"metadata"`
	Type        string `json:"type" xml:"type"`
	Keywords    string `json:"keywords" xml:"keywords"`
	Group       string `json:"group" xml:"group"`
}

type serviceDefinition struct {
	XMLName    xml.Name    `json:"-" xml:"service_definition"`
	Code       string      `json:"service_code" xml:"service_code"`
	Attributes []attribute `json:"attributes" xml:"attributes>attribute"`
}

type attribute struct {
	Variable            bool    `json:"variable" xml:"variable"`
	Code                string  `json:"code" xml:"code"`
	Datatype            string  `json:"datatype" xml:"datatype"`
	Required            bool    `json:"required" xml:"required"`
	DatatypeDescription string  `json:"datatype_description" xml:"datatype_description"`
	Order               int     `json:"order" xml:"order"`
	Description         string  `json:"description" xml:"description"`
	Values              []value `json:"values,omitempty" xml:"values>value,omitempty"`
}

type value struct {
	Key  string `json:"key" xml:"key"`
	Name string `json:"name" xml:"name"`
}

// created is the reply to POST requests.
type created struct {
	ID            string `json:"service_request_id" xml:"service_request_id"`
	ServiceNotice string `json:"service_notice" xml:"service_notice"`
}

// tokenReply is the reply of tokens/{token}.
type tokenReply struct {
	ID    string `json:"service_request_id" xml:"service_request_id"`
	Token string `json:"token" xml:"token"`
}

// request is a service request as GET requests shows it.
type request struct {
	ID                string `json:"service_request_id" xml:"service_request_id"`
	Status            string `json:"status" xml:"status"`
	StatusNotes       string `json:"status_notes" xml:"status_notes"`
	ServiceName       string `json:"service_name" xml:"service_name"`
	ServiceCode       string `json:"service_code" xml:"service_code"`
	Description       string `json:"description" xml:"description"`
	AgencyResponsible string `json:"agency_responsible" xml:"agency_responsible"`
	ServiceNotice     string `json:"service_notice" xml:"service_notice"`
	RequestedDatetime string `json:"requested_datetime" xml:"requested_datetime"`
	UpdatedDatetime   string `json:"updated_datetime" xml:"updated_datetime"`
	ExpectedDatetime  string `json:"expected_datetime,omitempty" xml:"expected_datetime,omitempty"`
	Address           string `json:"address" xml:"address"`
	AddressID         string `json:"address_id" xml:"address_id"`
}

// serviceRequests is the XML list of created, tokenReply or request.
type serviceRequests[T any] struct {
	XMLName  xml.Name `xml:"service_requests"`
	Requests []T      `xml:"request"`
}

// update is one entry of servicerequestupdates.
type update struct {
	UpdateID         string `json:"update_id" xml:"update_id"`
	ServiceRequestID string `json:"service_request_id" xml:"service_request_id"`
	Status           string `json:"status" xml:"status"`
	UpdatedDatetime  string `json:"updated_datetime" xml:"updated_datetime"`
	Description      string `json:"description" xml:"description"`
}

type serviceRequestUpdates struct {
	XMLName xml.Name `xml:"service_request_updates"`
	Updates []update `xml:"request_update"`
}

type servicesXML struct {
	XMLName  xml.Name  `xml:"services"`
	Services []service `xml:"service"`
}

// apiError is one error of the specification's error list.
type apiError struct {
	Code        int    `json:"code" xml:"code"`
	Description string `json:"description" xml:"description"`
}

type errorsXML struct {
	XMLName xml.Name   `xml:"errors"`
	Errors  []apiError `xml:"error"`
}

// Formats.
const (
	formatJSON = "json"
	formatXML  = "xml"
)

// write writes a reply in the format: jsonV as JSON, xmlV as XML with the
// XML declaration.
func (s *Server) write(w http.ResponseWriter, format string, code int, jsonV, xmlV any) {
	var (
		b   []byte
		err error
	)
	if format == formatJSON {
		b, err = json.Marshal(jsonV)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	} else {
		b, err = xml.Marshal(xmlV)
		b = append([]byte(xml.Header), b...)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	}
	if err != nil {
		s.log.Error("encoding open311 reply", "err", err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if _, err := w.Write(append(b, '\n')); err != nil {
		s.log.Debug("writing open311 reply", "err", err)
	}
}

// fail writes errors (at least one) with the status of the first.
func (s *Server) fail(w http.ResponseWriter, format string, errs ...apiError) {
	code := errs[0].Code
	if code >= 500 {
		errs = []apiError{{Code: code, Description: http.StatusText(code)}}
	}
	s.write(w, format, code, errs, errorsXML{Errors: errs})
}
