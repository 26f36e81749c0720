"""Anomaly alerts (issue 12): a detector that reads the event log and records ``anomaly_detected`` events.

Advisory only: the scorer ignores these events, so an alert never changes a result (detectors.py).
"""
