import pytest

# Failed checks inside the shared helpers explain themselves too.
pytest.register_assert_rewrite("tests.server.people.helpers")
