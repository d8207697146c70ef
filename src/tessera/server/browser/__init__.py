"""The pages a person sees: login, consent and logout, and the
authorization endpoint that sends them there."""
