"""The engine: from a change to a chain (planning), from a chain to triggered runs (sending),
from forge news to statuses (tracking), and from statuses back onto the change (mirroring).

Forge-neutral: it speaks to forges only through the Forge protocol (bots/forges/base.py).
"""
