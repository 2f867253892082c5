"""Who is calling: session tokens, provider sign-in with Ethereum, the admin token."""
