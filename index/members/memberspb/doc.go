// Package memberspb holds the protobuf schema (members.proto) of membership
// log entries and the code protoc-gen-go generates from it (`make proto`).
// Only package members uses it.
package memberspb
