"""Notifications: chain events sent to chat and e-mail through Apprise (docs/notifications.md)."""
