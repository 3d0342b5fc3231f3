//! The columns of the observatory's open data (`/observatoire.csv`, DESIGN §12), in order, each
//! with its type, French title and description and its constraints: the one list that the CSV's
//! header, its cells and its frictionless Table Schema (`/observatoire.schema.json`,
//! <https://specs.frictionlessdata.io/table-schema/>) are all made from, so they cannot drift
//! apart. The column names are stable (README documents them).

use serde::Serialize;

/// A Table Schema field type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Whole number, no sign in practice (every integer column has a minimum of 0 or 1).
    Integer,
    /// Decimal with a dot: `8.33`.
    Number,
    String,
    /// `oui` or `non` (the field's `trueValues` and `falseValues`).
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Boolean => "boolean",
            Kind::Date => "date",
        }
    }
}

/// What a boolean column says for true and false.
pub const TRUE_VALUES: [&str; 1] = ["oui"];
pub const FALSE_VALUES: [&str; 1] = ["non"];

/// One column.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub title: &'static str,
    pub description: &'static str,
    /// Never empty.
    pub required: bool,
    /// No two rows share a value.
    pub unique: bool,
    pub minimum: Option<i64>,
    pub maximum: Option<i64>,
    /// The only values allowed (empty: any).
    pub one_of: &'static [&'static str],
    /// A Table Schema `format` other than the default (`uri`).
    pub format: Option<&'static str>,
}

const fn field(name: &'static str, kind: Kind, title: &'static str, description: &'static str) -> Field {
    Field {
        name,
        kind,
        title,
        description,
        required: false,
        unique: false,
        minimum: None,
        maximum: None,
        one_of: &[],
        format: None,
    }
}

impl Field {
    const fn required(self) -> Field {
        Field { required: true, ..self }
    }

    const fn range(self, minimum: i64, maximum: Option<i64>) -> Field {
        Field { minimum: Some(minimum), maximum, ..self }
    }

    const fn unique(self) -> Field {
        Field { unique: true, ..self }
    }

    const fn one_of(self, values: &'static [&'static str]) -> Field {
        Field { one_of: values, ..self }
    }

    const fn format(self, format: &'static str) -> Field {
        Field { format: Some(format), ..self }
    }
}

/// A field as the Table Schema writes it (members in the order a reader expects).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SchemaField {
    name: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
    title: &'static str,
    description: &'static str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    true_values: &'static [&'static str],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    false_values: &'static [&'static str],
    #[serde(skip_serializing_if = "Constraints::is_empty")]
    constraints: Constraints,
}

#[derive(Serialize)]
struct Constraints {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unique: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    minimum: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum: Option<i64>,
    #[serde(rename = "enum", skip_serializing_if = "<[_]>::is_empty")]
    one_of: &'static [&'static str],
}

impl Constraints {
    fn is_empty(&self) -> bool {
        !self.required && !self.unique && self.minimum.is_none() && self.maximum.is_none() && self.one_of.is_empty()
    }
}

impl From<&Field> for SchemaField {
    fn from(f: &Field) -> SchemaField {
        let boolean = f.kind == Kind::Boolean;
        SchemaField {
            name: f.name,
            kind: f.kind.as_str(),
            format: f.format,
            title: f.title,
            description: f.description,
            true_values: if boolean { &TRUE_VALUES } else { &[] },
            false_values: if boolean { &FALSE_VALUES } else { &[] },
            constraints: Constraints {
                required: f.required,
                unique: f.unique,
                minimum: f.minimum,
                maximum: f.maximum,
                one_of: f.one_of,
            },
        }
    }
}

/// The Table Schema of `/observatoire.csv` (<https://specs.frictionlessdata.io/table-schema/>).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableSchema {
    fields: Vec<SchemaField>,
    /// An empty cell is a missing value.
    missing_values: [&'static str; 1],
    primary_key: &'static str,
}

/// Said of every free-text column: how a cell that a spreadsheet would take for a formula is
/// written (see [`crate::console::spreadsheet`]).
macro_rules! text_rule {
    () => {
        " Une cellule qui commencerait par =, +, -, @, une tabulation ou un retour chariot est \
         précédée d'une apostrophe (') pour qu'un tableur ne la prenne pas pour une formule\u{a0}; \
         le JSON (/observatoire.json) donne le texte tel quel."
    };
}

/// Every column of `/observatoire.csv`, in order.
pub const FIELDS: [Field; 18] = [
    field(
        "demarche_id",
        Kind::Integer,
        "Numéro de la démarche",
        "Numéro de la démarche, celui de ses liens (/Demarches/{numéro}).",
    )
    .required()
    .unique()
    .range(1, None),
    field(
        "nom",
        Kind::String,
        "Démarche",
        concat!("Nom de la démarche, tel que ses porteurs l'ont écrit.", text_rule!()),
    )
    .required(),
    field(
        "administration",
        Kind::String,
        "Administration",
        concat!(
            "Administration qui porte la démarche, telle que ses porteurs l'ont écrite\u{a0}; vide si elle \
             n'est pas indiquée.",
            text_rule!()
        ),
    ),
    field(
        "volume_annuel",
        Kind::Integer,
        "Volume annuel déclaré",
        "Nombre de démarches effectuées par an, déclaré par les porteurs\u{a0}; vide s'il n'est pas déclaré.",
    )
    .range(0, None),
    field("nombre_avis", Kind::Integer, "Nombre d'avis", "Avis reçus sur la période (de periode_debut à periode_fin).")
        .required()
        .range(0, None),
    field(
        "statut",
        Kind::String,
        "Statut de publication",
        "publie\u{a0}: au moins 100\u{a0}avis, les indicateurs sont publiés\u{a0}; insuffisant\u{a0}: de 1 à \
         99\u{a0}avis («\u{a0}Nombre d'avis insuffisant\u{a0}»), pas d'indicateur\u{a0}; a_venir\u{a0}: aucun \
         avis sur la période.",
    )
    .required()
    .one_of(&["publie", "insuffisant", "a_venir"]),
    field(
        "satisfaction_indice",
        Kind::Number,
        "Satisfaction (sur 10)",
        "Moyenne des réponses à «\u{a0}De façon générale, comment s'est passée cette démarche\u{a0}?\u{a0}»\
         \u{a0}: Très bien 10, Moyen 5, Pas bien 0\u{a0}; 2\u{a0}décimales. Vide si statut ne vaut pas publie.",
    )
    .range(0, Some(10)),
    field(
        "facilite_indice",
        Kind::Number,
        "Facilité (sur 10)",
        "Moyenne des réponses à «\u{a0}La démarche était-elle facile\u{a0}?\u{a0}» parmi les avis qui y ont \
         répondu\u{a0}: Facile 10, Ni facile ni difficile 5, Difficile 0\u{a0}; 2\u{a0}décimales. Vide si statut \
         ne vaut pas publie, ou si personne n'y a répondu.",
    )
    .range(0, Some(10)),
    field(
        "clarte_indice",
        Kind::Number,
        "Clarté du langage (sur 10)",
        "Moyenne des réponses à «\u{a0}Le langage employé était-il clair\u{a0}?\u{a0}» parmi les avis qui y ont \
         répondu\u{a0}: Clair 10, Moyennement clair 5, Pas clair 0\u{a0}; 2\u{a0}décimales. Vide si statut ne \
         vaut pas publie, ou si personne n'y a répondu.",
    )
    .range(0, Some(10)),
    field(
        "autonomie_pct",
        Kind::Number,
        "Autonomie (%)",
        "Part des avis qui répondent «\u{a0}Je n'ai pas eu besoin d'aide\u{a0}», en pourcentage, \
         1\u{a0}décimale. Vide si statut ne vaut pas publie.",
    )
    .range(0, Some(100)),
    field(
        "realisable_en_ligne",
        Kind::String,
        "Réalisable en ligne",
        "oui, partiel ou non\u{a0}: la démarche peut-elle être faite en ligne\u{a0}? Déclaré par les \
         porteurs\u{a0}; vide s'ils ne l'ont pas déclaré.",
    )
    .one_of(&["oui", "partiel", "non"]),
    field(
        "franceconnect",
        Kind::Boolean,
        "Identification FranceConnect",
        "oui ou non, déclaré par les porteurs\u{a0}; vide s'ils ne l'ont pas déclaré.",
    ),
    field(
        "compatible_mobile",
        Kind::Boolean,
        "Compatible mobile",
        "oui ou non, déclaré par les porteurs\u{a0}; vide s'ils ne l'ont pas déclaré.",
    ),
    field(
        "support_qualite",
        Kind::Boolean,
        "Support usager de qualité",
        "Au moins deux moyens de contact et une aide humaine\u{a0}: oui ou non, déclaré par les porteurs\u{a0}; \
         vide s'ils ne l'ont pas déclaré.",
    ),
    field(
        "disponibilite",
        Kind::Boolean,
        "Disponibilité",
        "Le service est disponible et répond rapidement\u{a0}: oui ou non, déclaré par les porteurs\u{a0}; vide \
         s'ils ne l'ont pas déclaré.",
    ),
    field(
        "periode_debut",
        Kind::Date,
        "Début de la période",
        "Premier jour (heure de Paris) de la période des avis comptés, inclus\u{a0}: la période compte les \
         365\u{a0}jours qui finissent la veille de la publication.",
    )
    .required(),
    field(
        "periode_fin",
        Kind::Date,
        "Fin de la période",
        "Dernier jour (heure de Paris) de la période des avis comptés, inclus\u{a0}: la veille de la publication.",
    )
    .required(),
    field(
        "page_url",
        Kind::String,
        "Page de la démarche",
        "Adresse de la page publique de la démarche à l'observatoire.",
    )
    .required()
    .format("uri"),
];

/// The CSV's header: the names of [`FIELDS`].
pub const CSV_COLUMNS: [&str; FIELDS.len()] = {
    let mut names = [""; FIELDS.len()];
    let mut i = 0;
    while i < FIELDS.len() {
        names[i] = FIELDS[i].name;
        i += 1;
    }
    names
};

/// The Table Schema of `/observatoire.csv`.
pub fn table_schema() -> TableSchema {
    TableSchema {
        fields: FIELDS.iter().map(SchemaField::from).collect(),
        missing_values: [""],
        primary_key: "demarche_id",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_schema_lists_every_column_in_order() {
        let schema = serde_json::to_value(table_schema()).unwrap();
        let fields = schema["fields"].as_array().unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert_eq!(names, CSV_COLUMNS);
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "no column twice");
        for f in fields {
            let title = f["title"].as_str().unwrap();
            let description = f["description"].as_str().unwrap();
            assert!(!title.is_empty() && description.len() > 20, "{f}");
            for punct in [":", ";", "?", "!"] {
                assert!(!description.contains(&format!(" {punct}")), "a plain space before {punct:?}: {description}");
            }
        }
        let by_name = |n: &str| fields.iter().find(|f| f["name"] == n).unwrap();
        assert_eq!(by_name("demarche_id")["constraints"], json!({"required": true, "unique": true, "minimum": 1}));
        assert_eq!(by_name("satisfaction_indice")["constraints"], json!({"minimum": 0, "maximum": 10}));
        assert_eq!(by_name("franceconnect")["trueValues"], json!(["oui"]));
        assert_eq!(by_name("statut")["constraints"]["enum"], json!(["publie", "insuffisant", "a_venir"]));
        assert_eq!(by_name("page_url")["format"], "uri");
        assert!(by_name("nom")["description"].as_str().unwrap().contains("apostrophe"));
        assert!(by_name("administration").get("constraints").is_none(), "no empty constraints");
        assert!(by_name("nom").get("trueValues").is_none(), "true and false values on booleans only");
        assert_eq!(schema["primaryKey"], "demarche_id");
        // Written in the order a reader expects: each field's name, then its type, title…
        let text = serde_json::to_string(&table_schema()).unwrap();
        assert!(text.starts_with(r#"{"fields":[{"name":"demarche_id","type":"integer","title":"#), "{text:.80}");
        assert_eq!(schema["missingValues"], json!([""]));
    }

    #[test]
    fn integer_columns_cannot_be_negative() {
        for f in FIELDS.iter().filter(|f| f.kind == Kind::Integer) {
            assert!(f.minimum.is_some_and(|m| m >= 0), "{}", f.name);
        }
    }
}
