"""The product's URLs plus two reference views that bound what the webhook could reach.

Used only by bench/ingest.py (DJANGO_SETTINGS_MODULE=bench.benchsite.settings); never in the
product. ``bench_insert`` is created by the bench in the bench database.
"""

import hashlib

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as product_urlpatterns


@csrf_exempt
def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"accepted": 1}, status=202)


@csrf_exempt
def one_insert(request: HttpRequest) -> JsonResponse:
    key = hashlib.sha256(request.body).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_insert (k, body) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            [key, request.body.decode()],
        )
        accepted = cursor.rowcount
    return JsonResponse({"accepted": accepted}, status=202)


urlpatterns = [
    path("__bench__/bare", bare),
    path("__bench__/insert", one_insert),
    *product_urlpatterns,
]
