"""The organiser's workflow: registration sheets (报名表), official data and entry sheets in, published
results (公示, exports, certificates) out.

Pure parts (reading and checking sheets, planning the events, writing exports and certificates) live here so
that both the ``liveboard organiser`` CLI and the board's operators' console use the same code; a service
never imports another service, and this package imports no service. What the board and the CLI share on
the outside is Kafka (``lb.events.v1``, ``lb.raw.v1``) and ClickHouse (the archive, ``frozen_rounds`` and the
``organiser_imports`` audit table).
"""
