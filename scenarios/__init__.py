"""Bundled Locust scenarios for probe-agent; each module is a plain locustfile.

Run one by hand with `locust -f scenarios/search.py`.

This file only makes the directory installable as package data; Locust imports the scenario files by path.
"""
