"""English formats as Django's, but times to the second with the timezone: the admin console's
lists and detail pages show when things happened precisely enough to order them."""

DATETIME_FORMAT = "N j, Y, H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
TIME_FORMAT = "H:i:s"
