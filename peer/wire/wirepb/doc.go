// Package wirepb is the protobuf code generated from the .proto files beside
// it (run "make proto"). Only peer/wire imports it: the rest of Blueshift
// speaks the Go types of package wire.
package wirepb
