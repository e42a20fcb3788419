"""Date formats for the console and the admin alike (issue #15): ISO-like, with the zone.

Django's English locale would say "Dec. 1, 2026, 5:03 p.m."; FORMAT_MODULE_PATH puts these
first, so the admin's lists and read-only fields match the dashboard's ``when`` filter.
"""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
TIME_FORMAT = "H:i"
MONTH_DAY_FORMAT = "j F"
YEAR_MONTH_FORMAT = "F Y"
FIRST_DAY_OF_WEEK = 1
