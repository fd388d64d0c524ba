"""The rules that go with the contract (protos/): what a valid OrderPlaced is, what an id is and how
ids compare, in Python and in SQL. Every reader and writer asks these; tests/conformance holds the
implementations of them together."""
