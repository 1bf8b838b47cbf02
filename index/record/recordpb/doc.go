// Package recordpb holds the protobuf schema (record.proto) of records and
// their envelopes, and the code protoc-gen-go generates from it (`make
// proto`). Only package record uses it: everyone else speaks record.Record
// and record.Envelope.
package recordpb
