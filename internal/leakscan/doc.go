// Package leakscan finds keygate API keys where they should not be: in
// files, directory trees, streams and git histories. A finding is a string
// of a key's shape (any prefix keygate allows, "_", the exact body length)
// whose checksum is valid, checked with policy's parser, so near misses
// (wrong checksum, length or alphabet) are never reported. A Verifier then
// looks each key up in the store by id and verifies it against the
// record's hash, giving its status (active, revoked, expired, or unknown),
// and can revoke the active ones through keyadmin.
//
// Text is read line by line in constant memory: a line longer than the
// read buffer is scanned in overlapping pieces. The raw key is kept only
// inside a Finding, unexported; reports show its id and Mask.
package leakscan
