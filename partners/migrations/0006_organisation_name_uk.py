from django.db import migrations, models

NAMES_UK = {
    "qatar": "Держава Катар",
    "vatican": "Святий Престол (Ватикан)",
    "south-africa": "Південно-Африканська Республіка",
    "icrc": "Міжнародний комітет Червоного Хреста",
}


def name_intermediaries(apps, schema_editor):
    Organisation = apps.get_model("partners", "Organisation")
    for slug, name_uk in NAMES_UK.items():
        Organisation.objects.filter(slug=slug, name_uk="").update(name_uk=name_uk)


class Migration(migrations.Migration):
    dependencies = [("partners", "0005_share_covering_index")]

    operations = [
        migrations.AddField(
            model_name="organisation",
            name="name_uk",
            field=models.CharField(blank=True, max_length=200, verbose_name="name in Ukrainian"),
        ),
        migrations.RunPython(name_intermediaries, migrations.RunPython.noop),
    ]
