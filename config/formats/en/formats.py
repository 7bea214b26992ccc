"""English dates, unambiguous for readers on either side of the Atlantic: 15 Jan 2025, 24-hour time.

ISO 8601 stays the form of files, exports, the API and date inputs.
"""

DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
TIME_FORMAT = "H:i"
FIRST_DAY_OF_WEEK = 1
