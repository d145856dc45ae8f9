package keyadmin

import (
	"context"
	"fmt"
)

// RotatePepper adds a random pepper version to the store and makes it
// current; keys hashed with older versions keep working. It returns the new
// version. Stores without Caps.PepperRotation: ErrUnsupported.
func (s *Service) RotatePepper(ctx context.Context) (int, error) {
	if s.peppers == nil {
		return 0, fmt.Errorf("this store cannot rotate peppers: %w", ErrUnsupported)
	}
	v, err := s.peppers.InitPepper(ctx)
	if err != nil {
		return 0, fmt.Errorf("rotate pepper: %w", err)
	}
	return v, nil
}
