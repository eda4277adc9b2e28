"""Personal data: pseudonymous subject ids, the encrypted off-chain store, signed reads, access policy and sharing."""
