package binding

import (
	"encoding/json"
	"sync"
)

// Catalog is the engine's list of request defaults and names: the one
// place they are defined (front ends list them from here).
type Catalog struct {
	// Defaults holds the value a zero Request field takes.
	Defaults    Request
	Samplers    []string
	Schedulers  []string
	RNGs        []string
	Compat      []string
	VAETiling   []string // the modes of Request.VAETiling
	WeightTypes []string // what "sd-go quantize" and load-time plans may convert to
	Limits      Limits
}

// Limits bound what one request may ask for.
type Limits struct {
	MaxSide        int    `json:"max_side"`  // width and height
	MaxSteps       int    `json:"max_steps"` // sampler steps
	MaxBatch       int    `json:"max_batch"` // images per request
	MaxOutputBytes uint64 `json:"max_output_bytes"`
}

type catalogJSON struct {
	Request struct {
		Width     int     `json:"width"`
		Height    int     `json:"height"`
		Steps     int     `json:"steps"`
		CFGScale  float64 `json:"cfg_scale"`
		Seed      int64   `json:"seed"`
		Batch     int     `json:"batch"`
		Sampler   string  `json:"sampler"`
		Scheduler string  `json:"scheduler"`
		Strength  float64 `json:"strength"`
		ClipSkip  int     `json:"clip_skip"`
		RNG       string  `json:"rng"`
		Compat    string  `json:"compat"`
		VAETiling string  `json:"vae_tiling"`
		TileSize  int     `json:"vae_tile_size"`
		Overlap   int     `json:"vae_tile_overlap"`
		Aesthetic float64 `json:"aesthetic_score"`
		NegAesth  float64 `json:"negative_aesthetic_score"`
		Switch    float64 `json:"refiner_switch"`
	} `json:"request"`
	Samplers    []string `json:"samplers"`
	Schedulers  []string `json:"schedulers"`
	RNGs        []string `json:"rngs"`
	Compat      []string `json:"compat"`
	VAETiling   []string `json:"vae_tiling"`
	WeightTypes []string `json:"weight_types"`
	Limits      Limits   `json:"limits"`
}

// catalogCache holds the parsed catalog of a library (it never changes).
type catalogCache struct {
	once sync.Once
	cat  Catalog
	err  error
}

var catalogs sync.Map // *Library -> *catalogCache

// Catalog returns the engine's request defaults and names.
func (l *Library) Catalog() (Catalog, error) {
	v, _ := catalogs.LoadOrStore(l, &catalogCache{})
	c := v.(*catalogCache)
	c.once.Do(func() {
		js, err := readJSON("catalog", func(buf []byte, needed *uintptr) int32 {
			return l.fn.catalogJSON(buf, uintptr(len(buf)), needed)
		}, func() string { return "" })
		if err != nil {
			c.err = err
			return
		}
		var j catalogJSON
		if err := json.Unmarshal(js, &j); err != nil {
			c.err = &Error{Op: "catalog", Status: StatusInternal, Msg: "engine returned malformed JSON: " + err.Error()}
			return
		}
		d := &c.cat.Defaults
		r := &j.Request
		d.Width, d.Height, d.Steps, d.CFGScale, d.Seed, d.BatchCount = r.Width, r.Height, r.Steps, r.CFGScale, r.Seed, r.Batch
		d.Sampler, d.Scheduler, d.Strength, d.ClipSkip, d.RNG, d.Compat = r.Sampler, r.Scheduler, r.Strength, r.ClipSkip, r.RNG, r.Compat
		c.cat.Samplers, c.cat.Schedulers, c.cat.RNGs = j.Samplers, j.Schedulers, j.RNGs
		d.VAETiling, d.VAETileSize, d.VAETileOverlap = r.VAETiling, r.TileSize, r.Overlap
		d.AestheticScore, d.NegativeAestheticScore, d.RefinerSwitch = r.Aesthetic, r.NegAesth, r.Switch
		c.cat.Compat, c.cat.WeightTypes, c.cat.Limits = j.Compat, j.WeightTypes, j.Limits
		c.cat.VAETiling = j.VAETiling
	})
	return c.cat, c.err
}

// fill returns req with its zero fields set to the defaults (the RNG to
// rng, the model's, when that is set). The seed is always the caller's.
func (c Catalog) fill(req Request, rng string) Request {
	d := c.Defaults
	if req.Width == 0 {
		req.Width = d.Width
	}
	if req.Height == 0 {
		req.Height = d.Height
	}
	if req.Steps == 0 {
		req.Steps = d.Steps
	}
	if req.CFGScale == 0 {
		req.CFGScale = d.CFGScale
	}
	if req.BatchCount == 0 {
		req.BatchCount = d.BatchCount
	}
	if req.Sampler == "" {
		req.Sampler = d.Sampler
	}
	if req.Scheduler == "" {
		req.Scheduler = d.Scheduler
	}
	if req.Strength == 0 {
		req.Strength = d.Strength
	}
	if req.RNG == "" {
		req.RNG = rng
		if req.RNG == "" {
			req.RNG = d.RNG
		}
	}
	if req.Compat == "" {
		req.Compat = d.Compat
	}
	if req.VAETiling == "" {
		req.VAETiling = d.VAETiling
	}
	if req.VAETileSize == 0 {
		req.VAETileSize = d.VAETileSize
	}
	if req.VAETileOverlap == 0 {
		req.VAETileOverlap = d.VAETileOverlap
	}
	if req.AestheticScore == 0 {
		req.AestheticScore = d.AestheticScore
	}
	if req.NegativeAestheticScore == 0 {
		req.NegativeAestheticScore = d.NegativeAestheticScore
	}
	return req
}
