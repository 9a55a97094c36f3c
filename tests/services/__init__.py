"""Real components for adapter tests, started on 127.0.0.1 on first use and stopped at the end.

Each module holds the session fixtures of one component. A component that cannot be started
on this machine skips its tests locally, but fails the run under CI (`CI=true`), so a green
CI always means the adapter was exercised against the real thing.
"""
