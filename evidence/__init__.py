"""launchplane-evidence: receives every host's audit records and answers which lanes are proven."""
