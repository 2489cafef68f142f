"""Database: SQLAlchemy models, the engine, and Alembic migrations."""
