"""The center's OpenAPI document names every route the center serves, with each method, so an API client
generated from it (or schemathesis) reaches all of DICOMweb."""

from __future__ import annotations

import re
from collections.abc import Callable

from sandbox.center import create_app
from sandbox.center.routes import openapi_document
from sandbox.config import Settings

# The control plane, the home page, the PDF inside the report page and the document itself.
UNDOCUMENTED = {"/sandbox/reset", "/", "/report/{exam_id}/pdf", "/openapi.json"}


def test_every_route_and_method_of_the_center_is_documented(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    app = create_app(settings)
    doc = openapi_document(settings)["paths"]
    served: set[tuple[str, str]] = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method in ("HEAD", "OPTIONS", "*") or "{tail" in path or path.startswith("/static"):
            continue
        if path in UNDOCUMENTED:
            continue
        served.add((re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path), route.method.lower()))
    documented = {(path, method) for path, item in doc.items() for method in item}
    missing = served - documented
    assert not missing, sorted(missing)
    # QIDO-RS at every level is documented, with its standard keys.
    for path in ("/dicomweb/studies", "/dicomweb/series", "/dicomweb/instances", "/dicomweb/studies/{study}/series",
                 "/dicomweb/studies/{study}/instances", "/dicomweb/studies/{study}/series/{series}/instances"):
        names = {p["name"] for p in doc[path]["get"]["parameters"]}
        assert {"includefield", "limit", "offset"} <= names, path
    assert {"PatientName", "ModalitiesInStudy", "StudyDate"} <= {
        p["name"] for p in doc["/dicomweb/studies"]["get"]["parameters"]}
    frames = doc["/dicomweb/studies/{study}/series/{series}/instances/{sop}/frames/{frames}"]["get"]
    assert {"406", "404", "400"} <= set(frames["responses"]) and any("image/jls" in t for t in frames["responses"]["200"]["content"])
    page_404 = doc["/viewer/{exam_id}"]["get"]["responses"]["404"]["content"]
    assert list(page_404) == ["text/html"]
