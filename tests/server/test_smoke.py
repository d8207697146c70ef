from tests.support import RunningServer, token_request


def test_issues_a_token(server: RunningServer) -> None:
    server.create_client("smoke", scopes="read")

    response = token_request(server, "smoke")

    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"
    assert response.json()["scope"] == "read"
    assert response.headers["cache-control"] == "no-store"
