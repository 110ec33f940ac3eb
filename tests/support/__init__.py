"""What the tests share that is not a fixture: the WeChat simulator's consumer side, HTTP
and signing helpers, row counting and clean-up, the points books. Fixtures stay in the
conftest.py files; everything they lean on lives here, importable by name."""
