"""Test support for keepwarm's end-to-end tests: a scripted backend, a raw client, a proxy runner."""
