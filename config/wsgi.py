import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from config.preflight import settings_or_exit

settings_or_exit()  # a web server with a bad setting stops with one line naming it
application = get_wsgi_application()
