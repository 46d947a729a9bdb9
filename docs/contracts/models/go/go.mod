module stellaops.dev/contracts

go 1.22
