"""A store error nobody planned for (a store changed by hand): one line, `error: the store
failed: <reason>`, without the SQL statement, its values or the store's URL; the full detail
with --debug."""

import pytest
import sqlalchemy
from builders import sequence, step, write
from sqlalchemy.exc import DBAPIError

from nurture.store.connect import normalize_url

REFUSE_LEADS = {  # a trigger an administrator added: every new lead is refused
    "sqlite": [
        "CREATE TRIGGER no_leads BEFORE INSERT ON lead "
        "BEGIN SELECT RAISE(ABORT, 'no new leads here'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION no_leads() RETURNS trigger AS "
        "$$ BEGIN RAISE EXCEPTION 'no new leads here'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER no_leads BEFORE INSERT ON lead FOR EACH ROW EXECUTE FUNCTION no_leads()",
    ],
}
ANA = ("leads", "add", "--funnel", "web", "--name", "Ana Lima", "--email", "ana@example.com")
HINT = "(run with --debug for the detail)"


@pytest.fixture
def applied(project, run_store):
    write(project, "welcome.yaml", sequence("Welcome", step("Hello"), funnels=["web"]))
    assert run_store("apply", "--yes").exit_code == 0
    return project


def by_hand(store_url: str, *statements: str) -> None:
    """What an administrator does to the store outside nurture."""
    engine = sqlalchemy.create_engine(normalize_url(store_url))
    with engine.begin() as connection:
        for statement in statements or REFUSE_LEADS[engine.dialect.name]:
            connection.exec_driver_sql(statement)
    engine.dispose()


def test_a_store_that_refuses_a_write_is_one_line_without_the_statement(
    applied, run_store, store_url
):
    by_hand(store_url)
    result = run_store(*ANA)
    assert result.exit_code == 1
    assert result.stderr == f"error: the store failed: no new leads here {HINT}\n"
    for private in ("INSERT", "SQL", "Ana", "ana@example.com", "postgres", "nurture.db"):
        assert private not in result.output


def test_with_debug_the_store_error_shows_its_full_detail(applied, run_store, store_url):
    by_hand(store_url)
    with pytest.raises(DBAPIError, match="no new leads here") as raised:
        run_store("--debug", *ANA)
    assert "INSERT INTO lead" in str(raised.value)
    assert "ana@example.com" not in str(raised.value)  # hide_parameters, even here


def test_a_table_dropped_on_postgres_names_it_without_the_query(project, run, postgres_url):
    assert run("--database-url", postgres_url, "db", "upgrade").exit_code == 0
    by_hand(postgres_url, "DROP TABLE task CASCADE")
    result = run("--database-url", postgres_url, "tasks", "list")
    assert result.exit_code == 1
    assert result.stderr == f'error: the store failed: relation "task" does not exist {HINT}\n'
    assert "SELECT" not in result.output and "127.0.0.1" not in result.output
