"""How Leadline talks to HubSpot, in one place.

- ``client``: the typed, throttled CRM/Forms client and HubSpot's error classes
- ``throttle``: the token buckets and pauses every worker process shares (Redis)
- ``forms``: the Forms API (form definitions, submissions paging)
- ``names``: form and owner names for ids, cached in the database
- ``reconcile``: the Forms poll that finds submissions whose webhook never came
- ``sandbox``: a local imitation of HubSpot's API for tests and development
"""
