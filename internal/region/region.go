// Package region is the Kemendagri reference of Indonesia's provinces, cities
// (regencies and cities alike) and districts. It is embedded from idn-area-data
// so that the region part of a NIK can be checked without a network or a database.
package region

import (
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// The whole directory is embedded, so the licence and attribution travel inside
// every binary that carries the data, as the ODbL asks.
//
//go:embed data
var data embed.FS

// Province is a first-level region, such as 17 Bengkulu.
type Province struct {
	Code string // "17"
	Name string
}

// City is a second-level region: a regency (kabupaten) or a city (kota), which
// the civil registry treats alike.
type City struct {
	Code         string // "17.71"
	ProvinceCode string // "17"
	Name         string
}

// District is a third-level region (kecamatan).
type District struct {
	Code     string // "17.71.01"
	CityCode string // "17.71"
	Name     string
}

// Reference holds the regions by code. It is immutable after Load, so it is
// safe for concurrent use, and its methods return copies.
type Reference struct {
	provinces   []Province // sorted by code
	cities      []City     // sorted by code
	districts   []District // sorted by code
	province    map[string]Province
	city        map[string]City
	district    map[string]District
	districtsOf map[string][]District // by city code, sorted by code
}

var load = sync.OnceValues(func() (*Reference, error) { return parse(data) })

// Load parses the embedded reference on first use and returns the same
// Reference on every call.
func Load() (*Reference, error) { return load() }

// Province returns the province with the code, such as "17".
func (r *Reference) Province(code string) (Province, bool) {
	p, ok := r.province[code]
	return p, ok
}

// City returns the regency or city with the code, such as "17.71".
func (r *Reference) City(code string) (City, bool) {
	c, ok := r.city[code]
	return c, ok
}

// District returns the district with the code, such as "17.71.01".
func (r *Reference) District(code string) (District, bool) {
	d, ok := r.district[code]
	return d, ok
}

// Provinces returns all provinces sorted by code.
func (r *Reference) Provinces() []Province { return slices.Clone(r.provinces) }

// Cities returns all regencies and cities sorted by code.
func (r *Reference) Cities() []City { return slices.Clone(r.cities) }

// Districts returns all districts sorted by code.
func (r *Reference) Districts() []District { return slices.Clone(r.districts) }

// DistrictsOf returns the districts of the city sorted by code, or none for an
// unknown city.
func (r *Reference) DistrictsOf(cityCode string) []District {
	return slices.Clone(r.districtsOf[cityCode])
}

// Codes are fixed-width digit pairs, which is what lets a NIK's digits be read
// as region codes and lets string order be code order.
var (
	provinceCode = regexp.MustCompile(`^[0-9]{2}$`)
	cityCode     = regexp.MustCompile(`^[0-9]{2}\.[0-9]{2}$`)
	districtCode = regexp.MustCompile(`^[0-9]{2}\.[0-9]{2}\.[0-9]{2}$`)
)

// parse reads the three files under data/ in fsys and checks that they are
// consistent with each other.
func parse(fsys fs.FS) (*Reference, error) {
	r := &Reference{
		province:    make(map[string]Province),
		city:        make(map[string]City),
		district:    make(map[string]District),
		districtsOf: make(map[string][]District),
	}
	err := readCSV(fsys, "provinces.csv", []string{"code", "name"}, func(rec []string) error {
		p := Province{Code: rec[0], Name: rec[1]}
		if err := checkEntry(p.Code, p.Name, provinceCode, "", r.province); err != nil {
			return err
		}
		r.province[p.Code] = p
		r.provinces = append(r.provinces, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = readCSV(fsys, "regencies.csv", []string{"code", "province_code", "name"}, func(rec []string) error {
		c := City{Code: rec[0], ProvinceCode: rec[1], Name: rec[2]}
		if _, ok := r.province[c.ProvinceCode]; !ok {
			return fmt.Errorf("city %s: province %q does not exist", c.Code, c.ProvinceCode)
		}
		if err := checkEntry(c.Code, c.Name, cityCode, c.ProvinceCode, r.city); err != nil {
			return err
		}
		r.city[c.Code] = c
		r.cities = append(r.cities, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = readCSV(fsys, "districts.csv", []string{"code", "regency_code", "name"}, func(rec []string) error {
		d := District{Code: rec[0], CityCode: rec[1], Name: rec[2]}
		if _, ok := r.city[d.CityCode]; !ok {
			return fmt.Errorf("district %s: city %q does not exist", d.Code, d.CityCode)
		}
		if err := checkEntry(d.Code, d.Name, districtCode, d.CityCode, r.district); err != nil {
			return err
		}
		r.district[d.Code] = d
		r.districts = append(r.districts, d)
		r.districtsOf[d.CityCode] = append(r.districtsOf[d.CityCode], d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(r.provinces, func(a, b Province) int { return strings.Compare(a.Code, b.Code) })
	slices.SortFunc(r.cities, func(a, b City) int { return strings.Compare(a.Code, b.Code) })
	slices.SortFunc(r.districts, func(a, b District) int { return strings.Compare(a.Code, b.Code) })
	for _, ds := range r.districtsOf {
		slices.SortFunc(ds, func(a, b District) int { return strings.Compare(a.Code, b.Code) })
	}
	return r, nil
}

// checkEntry checks a code's shape, that it extends its parent's code and that
// it is new, because a NIK finds its region by those digits alone.
func checkEntry[T any](code, name string, shape *regexp.Regexp, parent string, seen map[string]T) error {
	if !shape.MatchString(code) {
		return fmt.Errorf("malformed code %q", code)
	}
	if parent != "" && !strings.HasPrefix(code, parent+".") {
		return fmt.Errorf("code %s does not extend its parent code %s", code, parent)
	}
	if _, dup := seen[code]; dup {
		return fmt.Errorf("duplicate code %s", code)
	}
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("code %s has no name", code)
	}
	return nil
}

// readCSV checks the header of data/name in fsys and calls row for each
// following record; errors name the file and the line.
func readCSV(fsys fs.FS, name string, header []string, row func(rec []string) error) error {
	f, err := fsys.Open(path.Join("data", name))
	if err != nil {
		return fmt.Errorf("region: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = len(header)
	got, err := r.Read()
	if err != nil {
		return fmt.Errorf("region: %s: %w", name, err)
	}
	if !slices.Equal(got, header) {
		return fmt.Errorf("region: %s line 1: header %q, want %q", name, got, header)
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("region: %s: %w", name, err)
		}
		if err := row(rec); err != nil {
			line, _ := r.FieldPos(0)
			return fmt.Errorf("region: %s line %d: %w", name, line, err)
		}
	}
}
