"""Creates the seed's table with PyIceberg, as the user's Phase 1 did: the schema of the seed's "Advanced
Schema Design" (names, ids, types, required flags) and its partition intent, in a SQL catalog at the given
warehouse. Prints what was created as JSON (field ids as PyIceberg assigned them, the spec it accepted)."""
import json
import sys

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform, IdentityTransform, MonthTransform, YearTransform
from pyiceberg.types import (
    BooleanType,
    FloatType,
    ListType,
    MapType,
    NestedField,
    StringType,
    StructType,
    TimestamptzType,
)


def seed_schema():
    return Schema(
        NestedField(1, "message_id", StringType(), required=True),
        NestedField(2, "event_timestamp", TimestamptzType(), required=True),
        NestedField(3, "ingestion_timestamp", TimestamptzType(), required=True),
        NestedField(4, "source_system", StringType(), required=True),
        NestedField(5, "text_content", StringType(), required=True),
        NestedField(6, "sentiment_score", FloatType(), required=True),
        NestedField(7, "sentiment_magnitude", FloatType(), required=True),
        NestedField(8, "primary_emotion", StringType(), required=True),
        NestedField(9, "emotion_intensity_vector", MapType(23, StringType(), 24, FloatType()), required=False),
        NestedField(10, "aspect_target_identification", ListType(25, StringType(), element_required=True), required=False),
        NestedField(11, "aspect_based_sentiment", MapType(26, StringType(), 27, FloatType()), required=False),
        NestedField(12, "sarcasm_detection", BooleanType(), required=True),
        NestedField(13, "subjectivity_score", FloatType(), required=True),
        NestedField(14, "toxicity_score", FloatType(), required=True),
        NestedField(
            15,
            "entity_recognition",
            ListType(
                28,
                StructType(NestedField(29, "text", StringType(), required=True), NestedField(30, "type", StringType(), required=True)),
                element_required=True,
            ),
            required=False,
        ),
        NestedField(16, "user_intent", StringType(), required=True),
        NestedField(17, "influence_score", FloatType(), required=False),
        NestedField(18, "processing_version", StringType(), required=True),
        NestedField(19, "ticker", StringType(), required=False),
        NestedField(20, "article_title", StringType(), required=False),
        NestedField(21, "source_url", StringType(), required=False),
        NestedField(22, "model_name", StringType(), required=False),
    )


def seed_spec():
    """The seed's PartitionSpec, verbatim: year, month and day of the event time, ticker, source."""
    return PartitionSpec(
        PartitionField(source_id=2, field_id=100, transform=YearTransform(), name="year"),
        PartitionField(source_id=2, field_id=101, transform=MonthTransform(), name="month"),
        PartitionField(source_id=2, field_id=102, transform=DayTransform(), name="day"),
        PartitionField(source_id=19, field_id=103, transform=IdentityTransform(), name="ticker"),
        PartitionField(source_id=4, field_id=104, transform=IdentityTransform(), name="source_system"),
    )


def main(warehouse, catalog_name, identifier):
    catalog = SqlCatalog(catalog_name, uri=f"sqlite:///{warehouse}/catalog.db", warehouse=f"file://{warehouse}")
    namespace = identifier.split(".")[0]
    catalog.create_namespace_if_not_exists(namespace)
    table = catalog.create_table(identifier, schema=seed_schema(), partition_spec=seed_spec())
    schema = table.schema()
    print(json.dumps({
        "fields": [{"id": f.field_id, "name": f.name, "type": str(f.field_type), "required": f.required} for f in schema.fields],
        "partition_spec": [{"source_id": f.source_id, "name": f.name, "transform": str(f.transform)} for f in table.spec().fields],
    }))


if __name__ == "__main__":
    main(*sys.argv[1:4])
