"""Floors: the least each hot path can do and still leave the app's rows, in plain SQL."""
