"""Settings of the miniature Channels project (``DJANGO_SETTINGS_MODULE``)."""

SECRET_KEY = "not-a-secret: a test project"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "channels"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
ASGI_APPLICATION = "tests.asgi_django.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
USE_TZ = True
