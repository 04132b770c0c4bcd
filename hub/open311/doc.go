// Package open311 is the hub's Open311 GeoReport v2 server: other city
// systems (the 12345 hotline platform, residents' committees' and property
// companies' apps) file cases and follow them through the standard API.
//
//	GET  /open311/v2/discovery.{json|xml}              service discovery
//	GET  /open311/v2/services.{fmt}                    our categories as services
//	GET  /open311/v2/services/{service_code}.{fmt}     a service definition (attributes)
//	POST /open311/v2/requests.{fmt}                    file a case (api_key)
//	GET  /open311/v2/requests.{fmt}                    the key's cases (api_key)
//	GET  /open311/v2/requests/{service_request_id}.{fmt}
//	GET  /open311/v2/tokens/{token}.{fmt}
//	GET  /open311/v2/servicerequestupdates.{fmt}       the timeline of the key's cases
//
// An API key is issued to a named partner system by an administrator
// (RegisterAdmin's endpoints, "hub open311-key add") and scoped to org
// nodes: it files cases only in communities under them, with the key's
// case source (hotline or partner), and reads only the cases it filed.
// Service request ids are case tickets. Our case states map to open and
// closed, with the Chinese state name (and the answer) in status_notes.
// Nothing of a complainant's contact data (phone, names, e-mail) is ever
// returned. docs/open311.md documents the mapping and every decision.
//
// Every reply is JSON or XML as the path's extension asks, errors in the
// specification's list format (<errors><error><code/><description/>).
// Request bodies and queries are parsed strictly (known parameters only,
// each at most once, UTF-8, bounded sizes) and rate-limited per key.
package open311
