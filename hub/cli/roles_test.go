package cli

import (
	"slices"
	"testing"

	"github.com/shequ/shequ/hub/accounts"
)

func TestParseRoles(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []accounts.Role
		wantErr bool
	}{
		{"empty", "", nil, false},
		{"admins", "bureau_admin, district_admin", []accounts.Role{accounts.RoleBureauAdmin, accounts.RoleDistrictAdmin}, false},
		{"trailing comma", "officer,", []accounts.Role{accounts.RoleOfficer}, false},
		{"unknown role", "bureau_admin,boss", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRoles(tt.in)
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("parseRoles(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
