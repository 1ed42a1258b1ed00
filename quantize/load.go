package quantize

import (
	"github.com/sd-go-project/sd-go/binding"
)

// LoadPlan is the policy's plan for converting the model at path while it
// loads (binding.ModelOptions.WeightPlan): the tensors whose type changes,
// chosen exactly as File chooses them, so that a model loaded with the plan
// holds the same weights as the file File writes with the same policy.
func LoadPlan(lib *binding.Library, path string, p Policy) ([]binding.TensorType, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	src, err := lib.OpenQuantizeSource(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	tensors := src.Tensors()
	_, out, _ := Plan(p, tensors)
	var plan []binding.TensorType
	for i, t := range out {
		if t == Drop || int32(t) == tensors[i].Type {
			continue
		}
		plan = append(plan, binding.TensorType{Name: tensors[i].Name, Type: t.String()})
	}
	return plan, nil
}
