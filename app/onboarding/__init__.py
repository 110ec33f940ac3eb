"""Onboarding: a member signs in from the mini-program (and joins on first sign-in)."""
