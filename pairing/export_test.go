package pairing

// GrantHash is grantHash, for the external tests.
var GrantHash = grantHash
