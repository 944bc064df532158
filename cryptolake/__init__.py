"""cryptolake."""
