package wire

// BatchSigCapability in a Hello says the device opens and verifies batched
// record envelopes (index/record batch.go: one signature over the root of
// a batch of records, each carrying its inclusion proof). A writer seals
// records in batches only while every member of the share it knows has
// announced it (sync/engine batchsig.go); older devices would refuse them.
const BatchSigCapability = "batchsig1"
