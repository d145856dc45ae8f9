package vaultplugin

import "time"

// secondsDuration is a TypeDurationSecond field's value as a Duration.
func secondsDuration(s int) time.Duration { return time.Duration(s) * time.Second }
