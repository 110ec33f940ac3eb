"""The benchmark harness every hot path uses: servers, wrk, counting, runs, reports."""
