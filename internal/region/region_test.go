package region

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func mustLoad(t *testing.T) *Reference {
	t.Helper()
	ref, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return ref
}

func TestLoadReturnsTheSameReference(t *testing.T) {
	a, b := mustLoad(t), mustLoad(t)
	if a != b {
		t.Error("Load returned two different references")
	}
}

func TestEmbeddedCounts(t *testing.T) {
	ref := mustLoad(t)
	if got := len(ref.Provinces()); got != 38 {
		t.Errorf("provinces: %d, want 38", got)
	}
	if got := len(ref.Cities()); got != 514 {
		t.Errorf("cities: %d, want 514", got)
	}
	if got := len(ref.Districts()); got != 7285 {
		t.Errorf("districts: %d, want 7285", got)
	}
}

func TestListsAreSortedByCode(t *testing.T) {
	ref := mustLoad(t)
	if !slices.IsSortedFunc(ref.Provinces(), func(a, b Province) int { return strings.Compare(a.Code, b.Code) }) {
		t.Error("provinces not sorted")
	}
	if !slices.IsSortedFunc(ref.Cities(), func(a, b City) int { return strings.Compare(a.Code, b.Code) }) {
		t.Error("cities not sorted")
	}
	if !slices.IsSortedFunc(ref.Districts(), func(a, b District) int { return strings.Compare(a.Code, b.Code) }) {
		t.Error("districts not sorted")
	}
}

func TestListsAreCopies(t *testing.T) {
	ref := mustLoad(t)
	ref.Provinces()[0].Name = "changed"
	ref.Cities()[0].Name = "changed"
	ref.Districts()[0].Name = "changed"
	ref.DistrictsOf("17.71")[0].Name = "changed"
	if ref.Provinces()[0].Name == "changed" || ref.Cities()[0].Name == "changed" ||
		ref.Districts()[0].Name == "changed" || ref.DistrictsOf("17.71")[0].Name == "changed" {
		t.Error("a caller changed the reference through a returned slice")
	}
}

func TestCitiesOfTheReportsExistWithTheirProvinces(t *testing.T) {
	ref := mustLoad(t)
	tests := []struct {
		city, cityName, province, provinceName string
	}{
		{"17.71", "Kota Bengkulu", "17", "Bengkulu"},
		{"18.71", "Kota Bandar Lampung", "18", "Lampung"},
	}
	for _, tt := range tests {
		t.Run(tt.cityName, func(t *testing.T) {
			c, ok := ref.City(tt.city)
			if !ok {
				t.Fatalf("City(%q) not found", tt.city)
			}
			want := City{Code: tt.city, ProvinceCode: tt.province, Name: tt.cityName}
			if c != want {
				t.Errorf("City(%q) = %+v, want %+v", tt.city, c, want)
			}
			p, ok := ref.Province(c.ProvinceCode)
			if !ok || p.Name != tt.provinceName {
				t.Errorf("Province(%q) = %+v, %v, want %s", c.ProvinceCode, p, ok, tt.provinceName)
			}
		})
	}
}

func TestDistrictLookupAndDistrictsOf(t *testing.T) {
	ref := mustLoad(t)
	d, ok := ref.District("17.71.01")
	if !ok || d.CityCode != "17.71" || d.Name != "Selebar" {
		t.Errorf("District(17.71.01) = %+v, %v", d, ok)
	}
	ds := ref.DistrictsOf("17.71")
	if len(ds) != 9 {
		t.Fatalf("DistrictsOf(17.71) has %d districts, want 9", len(ds))
	}
	for _, d := range ds {
		if d.CityCode != "17.71" {
			t.Errorf("DistrictsOf(17.71) holds %+v", d)
		}
	}
	if got := ref.DistrictsOf("99.99"); len(got) != 0 {
		t.Errorf("DistrictsOf(99.99) = %v, want none", got)
	}
}

func TestQuotedNamesAreUnquoted(t *testing.T) {
	d, ok := mustLoad(t).District("35.29.22")
	if !ok || d.Name != `Ra"as` {
		t.Errorf("District(35.29.22) = %+v, %v, want name Ra\"as", d, ok)
	}
}

func TestUnknownCodesAreNotFound(t *testing.T) {
	ref := mustLoad(t)
	for _, code := range []string{"", "99", "1", "17.", "17.99", "17.71.99", "17.71.01.01", " 17"} {
		if _, ok := ref.Province(code); ok {
			t.Errorf("Province(%q) found", code)
		}
		if _, ok := ref.City(code); ok {
			t.Errorf("City(%q) found", code)
		}
		if _, ok := ref.District(code); ok {
			t.Errorf("District(%q) found", code)
		}
	}
	// A code of one level is not found at another.
	if _, ok := ref.City("17"); ok {
		t.Error(`City("17") found`)
	}
	if _, ok := ref.Province("17.71"); ok {
		t.Error(`Province("17.71") found`)
	}
}

func TestParseRejectsInconsistentDataNamingFileAndLine(t *testing.T) {
	const (
		provinces = "code,name\n17,Bengkulu\n"
		regencies = "code,province_code,name\n17.71,17,Kota Bengkulu\n"
		districts = "code,regency_code,name\n17.71.01,17.71,Selebar\n"
	)
	tests := []struct {
		name               string
		prov, regen, distr string
		want               string
	}{
		{"city of a missing province", provinces, regencies + "18.71,18,Kota Bandar Lampung\n", districts,
			`region: regencies.csv line 3: city 18.71: province "18" does not exist`},
		{"district of a missing city", provinces, regencies, districts + "17.72.01,17.72,X\n",
			`region: districts.csv line 3: district 17.72.01: city "17.72" does not exist`},
		{"city code not under its province", provinces + "18,Lampung\n", regencies + "18.71,17,X\n", districts,
			"region: regencies.csv line 3: code 18.71 does not extend its parent code 17"},
		{"duplicate province", provinces + "17,Again\n", regencies, districts,
			"region: provinces.csv line 3: duplicate code 17"},
		{"malformed province code", "code,name\n7,Bengkulu\n", regencies, districts,
			`region: provinces.csv line 2: malformed code "7"`},
		{"empty name", provinces, regencies, districts + "17.71.02,17.71, \n",
			"region: districts.csv line 3: code 17.71.02 has no name"},
		{"wrong header", "kode,nama\n17,Bengkulu\n", regencies, districts,
			`region: provinces.csv line 1: header ["kode" "nama"], want ["code" "name"]`},
		{"wrong field count", provinces, regencies, districts + "17.71.02,17.71\n",
			"region: districts.csv: record on line 3: wrong number of fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"data/provinces.csv": {Data: []byte(tt.prov)},
				"data/regencies.csv": {Data: []byte(tt.regen)},
				"data/districts.csv": {Data: []byte(tt.distr)},
			}
			_, err := parse(fsys)
			if err == nil || err.Error() != tt.want {
				t.Errorf("parse error = %v, want %s", err, tt.want)
			}
		})
	}
}
