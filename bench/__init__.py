"""smop benchmarks: each module answers one question with ratios measured side by side."""
