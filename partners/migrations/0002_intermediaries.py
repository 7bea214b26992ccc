from django.db import migrations

INTERMEDIARIES = [
    ("qatar", "State of Qatar"),
    ("vatican", "Holy See (Vatican)"),
    ("south-africa", "Republic of South Africa"),
    ("icrc", "International Committee of the Red Cross"),
]


def create_intermediaries(apps, schema_editor):
    Organisation = apps.get_model("partners", "Organisation")
    for slug, name in INTERMEDIARIES:
        Organisation.objects.get_or_create(slug=slug, defaults={"name": name, "kind": "intermediary"})


def remove_intermediaries(apps, schema_editor):
    Organisation = apps.get_model("partners", "Organisation")
    Organisation.objects.filter(slug__in=[slug for slug, _name in INTERMEDIARIES], users__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("partners", "0001_initial")]

    operations = [migrations.RunPython(create_intermediaries, remove_intermediaries)]
