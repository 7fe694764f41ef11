"""`collect report`: graded results → accuracy, pass@k, maj@k, the router view, exports and plots."""
