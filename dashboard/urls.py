from django.urls import path

from dashboard import field_performance_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.index, name="index"),
    path("export.csv", views.export_csv, name="export_csv"),
    path(
        "field-performance/",
        field_performance_views.field_performance,
        name="field_performance",
    ),
    path(
        "field-performance/summary/",
        field_performance_views.field_performance_summary,
        name="field_performance_summary",
    ),
    path(
        "field-performance/export.csv",
        field_performance_views.field_performance_export_csv,
        name="field_performance_export_csv",
    ),
    path(
        "field-performance/export.json",
        field_performance_views.field_performance_export_json,
        name="field_performance_export_json",
    ),
]
