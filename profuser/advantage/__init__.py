"""advantage."""
