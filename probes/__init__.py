"""probe-agent: synthetic monitoring, load stages and alert fire drills for HTTP search APIs."""

__version__ = "0.1.0"
