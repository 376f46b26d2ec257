//! The demo catalogue: what a new user sees instead of an empty shop. Loaded at start-up when
//! there is no product at all, unless `INVENTORY_SERVICE__CATALOGUE__SEED_DEMO=false`.

use crate::catalogue::NewProduct;
use crate::domain::{Category, Description, ProductName, Sku, parse_price};

/// (SKU, name, description, price in euro cents, category, stock, low-stock threshold)
type DemoProduct = (
    &'static str,
    &'static str,
    &'static str,
    i64,
    &'static str,
    i64,
    i64,
);

/// 24 products in four categories; a few are already low on stock, one is sold out.
const PRODUCTS: [DemoProduct; 24] = [
    (
        "KIT-CHEF-KNIFE-20",
        "Chef's knife, 20 cm",
        "Forged stainless steel with a full tang and an oak handle.",
        8900,
        "kitchen",
        35,
        5,
    ),
    (
        "KIT-CAST-IRON-26",
        "Cast-iron skillet, 26 cm",
        "Pre-seasoned, oven-safe to 260 °C; lasts a lifetime.",
        4490,
        "kitchen",
        60,
        10,
    ),
    (
        "KIT-ENAMEL-MUG",
        "Enamel camping mug",
        "350 ml, white enamel with a blue rim.",
        1250,
        "kitchen",
        240,
        20,
    ),
    (
        "KIT-POUR-OVER",
        "Ceramic pour-over dripper",
        "Size 02, for one to four cups.",
        2400,
        "kitchen",
        4,
        5,
    ),
    (
        "KIT-BREAD-TIN",
        "Bread tin, 1 kg loaf",
        "Carbon steel with a non-stick coating.",
        1590,
        "kitchen",
        80,
        10,
    ),
    (
        "KIT-SPICE-GRINDER",
        "Manual spice grinder",
        "Adjustable ceramic burr, beech body.",
        2990,
        "kitchen",
        45,
        5,
    ),
    (
        "BOOK-RUST-PROG",
        "Programming in Rust",
        "A practical guide to ownership, traits and async, 2nd edition.",
        4990,
        "books",
        120,
        10,
    ),
    (
        "BOOK-DIST-SYS",
        "Designing Distributed Systems",
        "Patterns for services, queues and data that stay correct under failure.",
        5450,
        "books",
        75,
        10,
    ),
    (
        "BOOK-BREAD",
        "Flour Water Salt Yeast",
        "The classic home baker's guide to artisan bread.",
        3200,
        "books",
        3,
        5,
    ),
    (
        "BOOK-TRAILS-ALPS",
        "Hiking Trails of the Alps",
        "Sixty day hikes with maps and elevation profiles.",
        2795,
        "books",
        50,
        5,
    ),
    (
        "BOOK-SOUND-DESIGN",
        "The Art of Sound Design",
        "From microphones to mixing, for film and games.",
        3900,
        "books",
        25,
        5,
    ),
    (
        "BOOK-FIELD-BIRDS",
        "Field Guide to European Birds",
        "Over 700 species, illustrated.",
        2450,
        "books",
        0,
        5,
    ),
    (
        "OUT-TENT-2P",
        "Two-person backpacking tent",
        "Freestanding, 1.9 kg, with two doors and vestibules.",
        32900,
        "outdoors",
        18,
        5,
    ),
    (
        "OUT-SLEEPING-BAG",
        "Down sleeping bag, -5 °C",
        "800-fill responsibly sourced down, 1.1 kg.",
        27900,
        "outdoors",
        22,
        5,
    ),
    (
        "OUT-HEADLAMP",
        "Rechargeable headlamp",
        "450 lumens, red night mode, USB-C.",
        4500,
        "outdoors",
        140,
        15,
    ),
    (
        "OUT-WATER-FILTER",
        "Squeeze water filter",
        "Removes 99.9999 % of bacteria; 0.1 micron hollow fibre.",
        3900,
        "outdoors",
        2,
        5,
    ),
    (
        "OUT-TREKKING-POLES",
        "Carbon trekking poles",
        "Foldable, 280 g each, cork grips.",
        11900,
        "outdoors",
        30,
        5,
    ),
    (
        "OUT-STOVE",
        "Canister camping stove",
        "Boils a litre in three and a half minutes.",
        5990,
        "outdoors",
        55,
        5,
    ),
    (
        "AUD-HEADPHONES-NC",
        "Noise-cancelling headphones",
        "Over-ear, 30 hours of battery, multipoint Bluetooth.",
        24900,
        "audio",
        40,
        5,
    ),
    (
        "AUD-EARBUDS",
        "True wireless earbuds",
        "IPX4, wireless charging case.",
        12900,
        "audio",
        95,
        10,
    ),
    (
        "AUD-TURNTABLE",
        "Belt-drive turntable",
        "33 and 45 rpm, built-in phono preamp.",
        29900,
        "audio",
        6,
        5,
    ),
    (
        "AUD-BOOKSHELF-SPK",
        "Bookshelf speakers (pair)",
        "Two-way, 5.25 inch woofers, walnut veneer.",
        34900,
        "audio",
        12,
        3,
    ),
    (
        "AUD-USB-MIC",
        "USB condenser microphone",
        "Cardioid, 24-bit/96 kHz, with a desk stand.",
        9900,
        "audio",
        4,
        5,
    ),
    (
        "AUD-DAC-AMP",
        "Portable DAC and headphone amp",
        "Drives 300 ohm headphones; USB-C and Lightning.",
        14900,
        "audio",
        28,
        5,
    ),
];

/// The demo products, ready to store.
pub fn catalogue() -> Vec<NewProduct> {
    PRODUCTS
        .iter()
        .map(
            |&(sku, name, description, price, category, stock, threshold)| NewProduct {
                sku: Sku::parse(sku, "sku").expect("demo SKUs are valid"),
                name: ProductName::parse(name).expect("demo names are valid"),
                description: Description::parse(description).expect("demo descriptions are valid"),
                price: parse_price(price, "EUR").expect("demo prices are valid"),
                category: Category::parse(category, "category").expect("demo categories are valid"),
                initial_stock: stock,
                low_stock_threshold: threshold,
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_demo_catalogue_is_valid_with_unique_skus_in_four_categories() {
        let products = catalogue();
        assert_eq!(products.len(), 24);
        let skus: HashSet<&str> = products.iter().map(|p| p.sku.as_str()).collect();
        assert_eq!(skus.len(), 24);
        let categories: HashSet<&str> = products.iter().map(|p| p.category.as_str()).collect();
        assert_eq!(
            categories,
            HashSet::from(["kitchen", "books", "outdoors", "audio"])
        );
        assert!(
            products
                .iter()
                .any(|p| p.initial_stock < p.low_stock_threshold),
            "some products are low on stock"
        );
    }
}
