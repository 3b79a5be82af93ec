"""The admin console: set up forges, teams and grants; look at deliveries and the audit log.

Every configuration and permission change made here is written to the audit log
(see ``trail.py``). The how-to for admins is docs/admin.md.
"""

from django.contrib import admin

from console import access, activity, config, forges, notifications, quarantine, tokens

admin.site.site_header = "Baton administration"
admin.site.site_title = "Baton admin"
admin.site.index_title = "Set up forges, teams and grants"

__all__ = ["access", "activity", "config", "forges", "notifications", "quarantine", "tokens"]
